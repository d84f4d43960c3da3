"""Progress messages: timestamped lines off a terminal, a live spinner on one."""

import io

from rich.console import Console

from gedanken.progress import progress_messages


def test_off_a_terminal_every_message_is_a_timestamped_line() -> None:
    buf = io.StringIO()
    with progress_messages(Console(file=buf, force_terminal=False, width=200), "demo") as say:
        say("recording 8 bounce episodes")
        say("test: auditing [diffusion-bounce]")  # brackets are text, not markup
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("] demo") and lines[0].startswith("[") and " s]" in lines[0]
    assert lines[2].endswith("test: auditing [diffusion-bounce]")


def test_on_a_terminal_it_is_a_live_spinner_not_lines() -> None:
    buf = io.StringIO()
    with progress_messages(Console(file=buf, force_terminal=True, width=200), "demo") as say:
        say("recording")
    assert "] demo" not in buf.getvalue() and "] recording" not in buf.getvalue()
