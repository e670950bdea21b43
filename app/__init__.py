"""The command line and the Textual reader."""
