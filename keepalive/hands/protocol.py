"""What every pair of hands can do: the one interface the daemon's loop uses.

The Selenium hands (a controlled browser that reads the page) and the keys mode (keystrokes in the
user's own browser, blind but for the heartbeat) both provide it; so do the tests' stand-ins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from keepalive.hands.page import Observation
    from keepalive.states import Action


@runtime_checkable
class Hands(Protocol):
    def start(self) -> None:
        """Open the notebook (start or attach to the browser)."""

    def observe(self) -> "Observation":
        """What the page shows now; ``PageState.UNKNOWN`` where it cannot tell, never an exception."""

    def act(self, action: "Action") -> bool:
        """Do one action of the supervisor's; whether it could be done."""

    def reopen(self) -> None:
        """Reload the notebook in its one tab (the scheduled reopen)."""

    def release_runtime(self) -> bool:
        """Disconnect and delete the runtime, so that no compute units burn; whether it was done."""

    def close(self) -> None:
        """Let go of the browser (closing it unless configured to keep it open); safe to call twice."""
