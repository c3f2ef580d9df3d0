"""Ask for one line: an authenticator code (hidden), or a reason."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class PromptDialog(ModalScreen[str | None]):
    """Dismisses with the text typed (Enter or the button), or None (Escape or Cancel).
    ``secret``: the text is not shown as it is typed (a code)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, body: str, *, placeholder: str = "", ok: str = "OK", secret: bool = False,
                 required: bool = True) -> None:
        super().__init__()
        self.title_text, self.body, self.placeholder, self.ok = title, body, placeholder, ok
        self.secret, self.required = secret, required

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(self.title_text, id="confirm-title")
            yield Static(self.body, id="confirm-body")
            yield Input(placeholder=self.placeholder, password=self.secret, id="prompt-input")
            yield Static("", id="prompt-error")
            with Horizontal(id="confirm-buttons"):
                yield Button(self.ok, variant="warning", id="yes")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _submit(self) -> None:
        text = self.query_one(Input).value.strip()
        if self.required and not text:
            self.query_one("#prompt-error", Static).update("[$warning]Type something first, or Escape to cancel.[/]")
            return
        self.dismiss(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
