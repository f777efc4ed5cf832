"""The dialplan's route into the IVR, defined once: asterisk-conf/extensions.conf takes these
names as placeholders (`hamta-ivr asterisk render`), `hamta-ivr doctor` asks AMI for the same
route, `hamta-ivr dial` originates into it. Readers look the names up here when they run (not at
import), so a change here is a change everywhere (tests/asterisk/test_dialplan_route.py)."""

from __future__ import annotations

IVR_CONTEXT = "hamta-ivr"  # the caller ID is not vouched for (softphones, VoIP trunks)
TRUSTED_CONTEXT = "hamta-ivr-trusted"  # the mobile operators' trunks: the network vouches for it
IVR_EXTENSION = "7777"  # the IVR over FastAGI (`hamta-ivr serve`)
CLASSIC_EXTENSION = "7778"  # the same IVR over classic AGI (the hamta-ivr-agi script)


def route() -> str:
    """The route as Asterisk names it: extension@context."""
    return f"{IVR_EXTENSION}@{IVR_CONTEXT}"


def placeholders() -> dict[str, str]:
    """The route's @NAME@ values for the rendered configuration (AsteriskConfig.values)."""
    return {"IVR_CONTEXT": IVR_CONTEXT, "TRUSTED_CONTEXT": TRUSTED_CONTEXT,
            "IVR_EXTENSION": IVR_EXTENSION, "CLASSIC_EXTENSION": CLASSIC_EXTENSION,
            # a staff softphone dialling <extension>*09…: the caller ID starts after the `*`
            "IVR_AS_CALLER": str(len(IVR_EXTENSION) + 1),
            "CLASSIC_AS_CALLER": str(len(CLASSIC_EXTENSION) + 1)}
