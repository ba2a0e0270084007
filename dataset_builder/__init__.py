"""Build, import and publish the CIFAKE dataset."""
