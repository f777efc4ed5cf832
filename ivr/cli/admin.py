"""Administration commands that stand in for the Hamta web portal: subscriber add|set-password|
show, device add|show, transfers, audit. Bad input (number, IMEI, PIN of 4-8 digits, 8-digit
code, status) exits 2 with what to fix; an unknown number or IMEI, or one that already exists,
exits 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ivr.cli.common import open_registry, plain, print_json, print_rows
from ivr.registry import validate
from ivr.registry.errors import AlreadyExists, InvalidInput, NotFound
from ivr.registry.msisdn import normalize
from ivr.registry.validate import CODE_LEN, PIN_MAX, PIN_MIN, STATUSES
from ivr.usage import UsageError

NOT_FOUND = 1


def register(sub: argparse._SubParsersAction) -> None:
    subscriber = sub.add_parser("subscriber", help="add subscribers, set kartabl passwords, show")
    s_sub = subscriber.add_subparsers(dest="subscriber_command", metavar="ACTION", required=True)
    add = s_sub.add_parser("add", help="add a mobile number to the registry")
    add.add_argument("msisdn", metavar="MSISDN", help="09xxxxxxxxx, 9xxxxxxxxx, 989… or +989…")
    add.add_argument("--password", metavar="PIN",
                     help=f"kartabl password, {PIN_MIN}-{PIN_MAX} digits (default: none set)")
    add.add_argument("--national-id", metavar="ID", help="10-digit national ID (کد ملی)")
    add.set_defaults(func=subscriber_add)

    setpw = s_sub.add_parser("set-password", help="set or replace the kartabl password",
                             description="Also lifts a password lock, as the portal does.")
    setpw.add_argument("msisdn", metavar="MSISDN")
    setpw.add_argument("pin", metavar="PIN",
                       help=f"{PIN_MIN}-{PIN_MAX} digits; `-` reads it from standard input")
    setpw.set_defaults(func=subscriber_set_password)

    show = s_sub.add_parser("show", help="a subscriber's password state and lock")
    show.add_argument("msisdn", metavar="MSISDN")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=subscriber_show)

    device = sub.add_parser("device", help="register and show devices")
    d_sub = device.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    dadd = d_sub.add_parser("add", help="register a device (IMEI) in an owner's kartabl")
    dadd.add_argument("imei", metavar="IMEI", help="15 digits with a valid check digit")
    dadd.add_argument("--owner", metavar="MSISDN",
                      help="the owner's mobile number (omit for a device nobody owns)")
    dadd.add_argument("--brand", required=True, metavar="B", help="e.g. Samsung")
    dadd.add_argument("--model", required=True, metavar="M", help="e.g. Galaxy A54")
    dadd.add_argument("--status", default="registered", metavar="S",
                      help=f"one of {', '.join(STATUSES)} (default: registered)")
    dadd.add_argument("--activation-code", metavar="C", help=f"{CODE_LEN} digits")
    dadd.set_defaults(func=device_add)

    dshow = d_sub.add_parser("show", help="a device's status, owner and code state")
    dshow.add_argument("imei", metavar="IMEI")
    dshow.add_argument("--json", action="store_true", help="print JSON")
    dshow.set_defaults(func=device_show)

    tr = sub.add_parser("transfers", help="list ownership transfers, oldest first")
    tr.add_argument("--imei", metavar="I", help="only this device")
    tr.add_argument("--msisdn", metavar="M", help="only transfers from or to this number")
    tr.add_argument("--json", action="store_true", help="print JSON (a list)")
    tr.set_defaults(func=list_transfers)

    audit = sub.add_parser("audit", help="the security audit log, oldest first")
    audit.add_argument("--msisdn", metavar="M", help="only events of this number")
    audit.add_argument("--imei", metavar="I", help="only events of this device")
    audit.add_argument("--limit", type=int, metavar="N", help="only the last N events")
    audit.add_argument("--json", action="store_true", help="print JSON (a list)")
    audit.set_defaults(func=list_audit)


def _checked(kind: str, fn: Callable[[str], str], raw: str) -> str:
    """Validate one argument; bad input becomes a UsageError (exit 2) naming the fix."""
    try:
        return fn(raw)
    except InvalidInput as exc:
        raise UsageError(f"{kind}: {exc}") from None


def _msisdn(raw: str) -> str:
    return _checked("MSISDN", normalize, raw)


def _imei(raw: str) -> str:
    return _checked("IMEI", validate.imei, raw)


def _run(args: argparse.Namespace, action: Any) -> Any:
    """Open the registry, run `action(registry.portal)`; registry errors become messages."""
    with open_registry(args) as registry:
        try:
            return action(registry.portal)
        except InvalidInput as exc:
            raise UsageError(str(exc)) from None
        except (NotFound, AlreadyExists) as exc:
            print(f"hamta-ivr: {exc}", file=sys.stderr)
            return None


def _print_record(record: dict[str, Any]) -> None:
    width = max(len(k) for k in record)
    for key, value in record.items():
        print(f"{key:<{width}}  {'-' if value is None else value}")


# --- subscribers ---------------------------------------------------------------------------------
def subscriber_add(args: argparse.Namespace) -> int:
    number = _msisdn(args.msisdn)
    pin = (_checked("--password", lambda raw: validate.chosen_pin(raw, number), args.password)
           if args.password else None)  # the portal refuses a common PIN here too
    nid = (_checked("--national-id", validate.national_id, args.national_id)
           if args.national_id else None)
    done = _run(args, lambda r: r.add_subscriber(number, password=pin, national_id=nid) or True)
    if not done:
        return NOT_FOUND
    print(f"added {number} ({'with' if pin else 'without'} a kartabl password)")
    return 0


def subscriber_set_password(args: argparse.Namespace) -> int:
    number = _msisdn(args.msisdn)
    raw = sys.stdin.readline().strip() if args.pin == "-" else args.pin
    pin = _checked("PIN", validate.pin, raw)
    if not _run(args, lambda r: r.set_password(number, pin) or True):
        return NOT_FOUND
    print(f"kartabl password set for {number}")
    return 0


def subscriber_show(args: argparse.Namespace) -> int:
    number = _msisdn(args.msisdn)
    info = _run(args, lambda r: r.subscriber_info(number))
    return _show(args, info, f"{number} is not in the registry")


# --- devices -------------------------------------------------------------------------------------
def device_add(args: argparse.Namespace) -> int:
    imei = _imei(args.imei)
    owner = _msisdn(args.owner) if args.owner else None
    status = _checked("--status", validate.status, args.status)
    code = (_checked("--activation-code", validate.code, args.activation_code)
            if args.activation_code else None)
    done = _run(args, lambda r: r.add_device(imei, owner=owner, brand=args.brand,
                                             model=args.model, status=status,
                                             activation_code=code) or True)
    if not done:
        return NOT_FOUND
    print(f"added {imei} ({args.brand} {args.model}, {status}) "
          f"{'to ' + owner if owner else 'with no owner'}")
    return 0


def device_show(args: argparse.Namespace) -> int:
    imei = _imei(args.imei)
    info = _run(args, lambda r: r.device_info(imei))
    return _show(args, info, f"no device with IMEI {imei} in the registry")


def _show(args: argparse.Namespace, info: Any, missing: str) -> int:
    if info is None:
        print(f"hamta-ivr: {missing}", file=sys.stderr)
        return NOT_FOUND
    if args.json:
        print_json(plain(info))
    else:
        _print_record(plain(info))
    return 0


# --- listings ------------------------------------------------------------------------------------
def list_transfers(args: argparse.Namespace) -> int:
    imei = _imei(args.imei) if args.imei else None
    number = _msisdn(args.msisdn) if args.msisdn else None
    rows = [plain(r) for r in _run(args, lambda r: r.transfers(imei=imei, msisdn=number))]
    return print_rows(rows, args.json, lambda row: (
        f"{row['at']}  {row['reference']}  {row['imei']}  {row['from_msisdn'] or '-'} -> "
        f"{row['to_msisdn']}  {row['kind']} via {row['gateway']}"), "no transfers")


def list_audit(args: argparse.Namespace) -> int:
    imei = _imei(args.imei) if args.imei else None
    number = _msisdn(args.msisdn) if args.msisdn else None
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be 1 or more")
    rows = [plain(r) for r in _run(args, lambda r: r.audit(msisdn=number, imei=imei,
                                                            limit=args.limit))]
    return print_rows(rows, args.json, lambda row: (
        f"{row['at']}  {row['event']:<18} {row['gateway']:<6} {row['msisdn'] or '-':<14} "
        f"{row['imei'] or '-':<15}  {row['detail'] or ''}"))
