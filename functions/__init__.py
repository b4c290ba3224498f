"""One folder per resource group; each is one Lambda (`<family>_<group>/handler.py`)."""
