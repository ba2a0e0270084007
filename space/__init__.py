"""The Gradio Space: `app.py` (the app, `build_demo(model)`), its card, requirements and examples.

Installed with the kit so that `cifake demo` and `cifake push-space` work from any install;
`hub.py` uploads this folder's Space files with only the kit modules the app imports.
"""
