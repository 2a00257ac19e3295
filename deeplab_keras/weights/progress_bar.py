"""A one-line download progress bar on stderr (redrawn in place on a terminal)."""

import sys
import time


class ProgressBar:
    """A one-line progress bar on stderr (redrawn in place on a terminal)."""

    def __init__(self, label, total, enabled):
        self.label, self.total, self.enabled = label, total, enabled
        self.start = self.last = time.monotonic()
        self.tty = enabled and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        self.last_fraction = 0.0
        self.shown = None

    def update(self, done, final=False):
        if not self.enabled or (done == self.shown and not (final and self.tty)):
            return
        now = time.monotonic()
        fraction = done / self.total if self.total else 0.0
        if not final:
            if self.tty and now - self.last < 0.2:
                return
            if not self.tty and (now - self.last < 5.0 and fraction - self.last_fraction < 0.25):
                return
        self.last, self.last_fraction, self.shown = now, fraction, done
        rate = done / max(now - self.start, 1e-6)
        if self.total:
            width = 30
            filled = int(width * min(fraction, 1.0))
            bar = "=" * filled + "." * (width - filled)
            text = (f"{self.label}: [{bar}] {human(done)}/{human(self.total)} "
                    f"{100 * fraction:5.1f}% {human(rate)}/s")
        else:
            text = f"{self.label}: {human(done)} {human(rate)}/s"
        end = "\n" if final or not self.tty else ""
        sys.stderr.write(("\r" if self.tty else "") + text + end)
        sys.stderr.flush()


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} GiB"

