"""The kit's data files, installed as the package ``sgxlab.data``.

``keys/`` public test keys, ``costs/`` cost presets, ``traces/`` example
traces. Code finds them with :func:`sgxlab.files.data_path`, which works from
a checkout, an editable install and a wheel alike.
"""
