"""Documents: official letters, PDF signing and the receipt stamp, PDF limits, certificates,
PromptPay QR codes and printable registers (with the bundled Sarabun font)."""
from pathlib import Path

FONTS = Path(__file__).resolve().parent / "fonts"     # the bundled OFL Sarabun (stands in for TH Sarabun New)
