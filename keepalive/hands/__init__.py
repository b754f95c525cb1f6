"""The daemon's hands: what reads the Colab page and acts on it (Selenium, or keys in the user's own browser)."""
