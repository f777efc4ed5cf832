"""`hamta-ivr service paths|dropin|status`: what the systemd service needs from the config file.

The service is installed by deploy/install.sh (`./setup.sh install`): a wheel built from the
clone into /opt/hamta-ivr/venv, the static units deploy/hamta-ivr@.service (one instance per
FastAGI port) and deploy/hamta-ivr-sms.service, the user hamta. What a config file moves is a
drop-in (ivr.systemd), which `dropin` prints and the script writes. These commands read the config
file alone, never this shell's HAMTA_*.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ivr import config
from ivr.config import CONFIG_ENV, DEFAULT_CONFIG_FILE
from ivr.systemd import PREFIX, UNIT_DIR, make_plan, render_dropin, status


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser(
        "service", help="the systemd service hamta-ivr@PORT (installed by deploy/install.sh)",
        description="The FastAGI server as the systemd service hamta-ivr@PORT, running the code "
        f"installed in {PREFIX} as the user hamta; install it with `./setup.sh install`.")
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    paths = actions.add_parser("paths", help="the service's folders and port, as shell variables")
    _config(paths)
    paths.set_defaults(func=run_paths)
    dropin = actions.add_parser(
        "dropin", help="the units' drop-in for this config file (empty: the units' defaults fit)")
    _config(dropin)
    dropin.add_argument("--prefix", type=Path, default=PREFIX, metavar="DIR",
                        help=f"where hamta-ivr is installed (default {PREFIX})")
    dropin.add_argument("--sms", action="store_true", help="the SMS worker's drop-in")
    dropin.set_defaults(func=run_dropin)
    status = actions.add_parser("status", help="what is installed and what runs; exit 0 when "
                                "every enabled instance answers")
    _config(status)
    status.add_argument("--unit-dir", type=Path, default=UNIT_DIR, metavar="DIR",
                        help=f"where the units are (default {UNIT_DIR})")
    status.set_defaults(func=run_status)


def _config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help=f"the config file (default {CONFIG_ENV} or {DEFAULT_CONFIG_FILE})")


def config_path(args: argparse.Namespace) -> Path:
    if args.config is not None:
        return Path(args.config).absolute()
    return (config.current().config_file or DEFAULT_CONFIG_FILE).absolute()


def run_paths(args: argparse.Namespace) -> int:
    plan = make_plan(config_path(args))
    values = {"data_dir": plan.data_dir, "spool_dir": plan.spool_dir,
              "sounds_dir": plan.sounds_dir, "port": plan.port,
              "pepper_file": plan.pepper_file or "", "sms": int(plan.sms)}
    for key, value in values.items():
        print(f"{key}={shlex.quote(str(value))}")
    return 0


def run_dropin(args: argparse.Namespace) -> int:
    print(render_dropin(make_plan(config_path(args)), args.prefix.absolute(), args.sms), end="")
    return 0


def run_status(args: argparse.Namespace) -> int:
    ok, lines = status(config_path(args), args.unit_dir)
    print("\n".join(lines))
    return 0 if ok else 1
