"""``python -m spikelab._native``: compile (if needed) and load the native kernels, print where they are or why
not. Always exits 0: a machine without a compiler runs the portable path (``make venv`` calls this)."""
from spikelab._native import status

s = status()
if s["available"]:
    print(f"spikelab native kernels: {s['path']} ({'built now' if s['built_now'] else 'cached'}; "
          f"flags: {' '.join(s['flags']) or 'none'})")
else:
    print(f"spikelab native kernels unavailable, the portable PyTorch path is used: {s['reason']}")
