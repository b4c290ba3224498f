"""One folder per resource group; each is one Lambda (`<family>_<group>/handler.py`).

Every handler module is in this package, so this runs first in a function's init.
"""

from aiplane.cold_start import pause_collector

pause_collector()
