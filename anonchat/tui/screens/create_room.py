"""The create-room form (F3, /create without arguments, /secret create ROOM).

A public room is created by the chat screen once the form closes.  A secret
room is created by the form itself, like the passphrase form joins one, so a
refusal is shown here and the form stays open.  The passphrase field is
masked while typed, with a live warning for a weak one; "generate" fills in
six random words, shown in clear so they can be copied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from ...names import InvalidName, check_room, check_topic
from ...passphrases import generate_passphrase, passphrase_warning
from ..render import clean
from .passphrase import WORKING, prefill, room_problem, run_attempt, take_stray

#: Creates a secret room: (room, passphrase, generated) -> None, or why it failed.
CreateSecret = Callable[[str, str, bool], Awaitable[str | None]]

SHARING_NOTE = (
    "Give the passphrase to the others over a safe channel: anyone who has it "
    "can read and join. The server never sees the room's name or the passphrase."
)
GENERATED = "generated: copy it now, it is kept in memory only"
GENERATED_AGAIN = "a new one replaced the one shown before: copy this one (kept in memory only)"


class CreateRoomScreen(ModalScreen[tuple[str, str] | None]):
    """Dismisses with (name, topic) for a public room; None when cancelled or
    when a secret room was created here."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        room: str = "",
        *,
        secret: bool = False,
        create_secret: CreateSecret | None = None,
        passphrases: Callable[[], str] = generate_passphrase,
    ) -> None:
        super().__init__()
        self._prefill: str | None = None
        self._ready = False  # on_mount has begun
        self.stray: Callable[[], str] | None = None  # see passphrase.take_stray
        self.room = room
        self.secret = secret and create_secret is not None
        self.create_secret = create_secret
        self.passphrases = passphrases  # tests may seed it
        self.generated = ""  # the passphrase "generate" put in, while unchanged
        self.replaced = False  # it replaced an earlier generated one still shown

    def compose(self) -> ComposeResult:
        with Vertical(id="create-box", classes="dialog") as box:
            box.border_title = "Create a room"
            with RadioSet(id="room-kind"):
                yield RadioButton("Public: anyone can list, join and read", value=not self.secret)
                yield RadioButton(
                    "Secret: end-to-end encrypted, joined by passphrase",
                    value=self.secret,
                    id="kind-secret",
                    disabled=self.create_secret is None,
                )
            yield Label("Name")
            yield Input(self.room, placeholder="e.g. lobby", id="room-name", max_length=32)
            with Vertical(id="public-fields"):
                yield Label("Topic (optional)")
                yield Input(placeholder="what is it about?", id="room-topic", max_length=300)
            with Vertical(id="secret-fields"):
                # The field has the form's width: six generated words (up to 59
                # characters) fit whole. The button comes before it, so Tab
                # from the field goes on to Create, never back to "generate".
                with Horizontal(id="pass-label-row"):
                    yield Label("Passphrase", id="pass-label")
                    yield Button("generate", id="generate", compact=True)
                yield Input(password=True, id="room-pass", placeholder="or generate one")
                yield Static("", id="pass-warning", classes="warning")
                yield Static(Text(SHARING_NOTE), id="secret-note", classes="note")
            yield Static("", id="create-working", classes="working")
            yield Static("", id="create-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Create", variant="primary", id="create")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._ready = True
        self._working("")
        self._error("")
        self._show_kind()
        target = "#room-pass" if self.secret and self.room else "#room-name"
        self.query_one(target, Input).focus()
        if self._prefill is not None:
            self.prefill_passphrase(self._prefill)
        if self.secret:
            take_stray(self, "#room-pass", self.stray)

    def prefill_passphrase(self, text: str) -> None:
        self._prefill = prefill(self, "#room-pass", text, self._ready, "#create-working")

    def _show_kind(self) -> None:
        self.query_one("#public-fields").display = not self.secret
        self.query_one("#secret-fields").display = self.secret
        self.query_one("#create-box").border_title = (
            "Create a secret room" if self.secret else "Create a public room"
        )

    def _error(self, text: str) -> None:
        error = self.query_one("#create-error", Static)
        error.update(Text(clean(text)))
        error.display = bool(text)  # no empty row: the form fits 80×24

    def _working(self, text: str) -> None:
        working = self.query_one("#create-working", Static)
        working.update(Text(text))
        working.display = bool(text)

    @on(RadioSet.Changed, "#room-kind")
    def kind_changed(self, event: RadioSet.Changed) -> None:
        self.secret = event.pressed.id == "kind-secret"
        self._error("")
        self._show_kind()

    @on(Button.Pressed, "#generate")
    def generate(self) -> None:
        box = self.query_one("#room-pass", Input)
        again = bool(self.generated) and box.value == self.generated
        self.generated = self.passphrases()
        box.password = False  # in clear, to be copied
        box.value = self.generated
        box.cursor_position = len(box.value)
        box.focus()
        self.query_one("#generate", Button).label = "another"
        self.replaced = again  # never silently: the one shown before is gone

    @on(Input.Changed, "#room-pass")
    def passphrase_changed(self, event: Input.Changed) -> None:
        warning = self.query_one("#pass-warning", Static)
        if event.value and event.value == self.generated:
            warning.update(Text(GENERATED_AGAIN if self.replaced else GENERATED))
            warning.set_class(False, "weak")
            return
        self.generated = ""
        problem = passphrase_warning(event.value) if event.value else None
        warning.update(Text(problem or ""))
        warning.set_class(problem is not None, "weak")

    @on(Input.Submitted)
    @on(Button.Pressed, "#create")
    def submit(self) -> None:
        if self.query_one("#create", Button).disabled:
            return  # a secret room is being created
        name = self.query_one("#room-name", Input).value.strip().lstrip("#")
        if self.secret:
            self._submit_secret(name)
            return
        topic = self.query_one("#room-topic", Input).value.strip()
        try:
            check_room(name)
            check_topic(topic)
        except InvalidName as exc:
            self._error(str(exc))
            return
        self.dismiss((name, topic))

    def _submit_secret(self, name: str) -> None:
        problem = room_problem(name)
        if problem is not None:
            self._error(problem)
            self.query_one("#room-name", Input).focus()
            return
        passphrase = self.query_one("#room-pass", Input).value
        if not passphrase:
            self._error("type a passphrase, or press generate")
            self.query_one("#room-pass", Input).focus()
            return
        self.create(name, passphrase, passphrase == self.generated)

    @work(exclusive=True, group="secret-create")
    async def create(self, name: str, passphrase: str, generated: bool) -> None:
        assert self.create_secret is not None
        create_secret = self.create_secret
        button = self.query_one("#create", Button)
        button.disabled = True
        self._working(WORKING)
        self._error("")

        async def attempt(room: str, p: str) -> str | None:
            return await create_secret(room, p, generated)

        problem = await run_attempt(attempt, name, passphrase)
        button.disabled = False
        self._working("")
        if problem is None:
            self.dismiss(None)
        else:
            self._error(problem)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
