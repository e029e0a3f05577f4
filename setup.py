"""Build hook for the optional C accelerator; all other metadata lives in pyproject.toml.

``schemas._avro_fast`` (Avro encoding and event ids for the publisher) is optional: without a compiler
the build warns and the package installs without it, and ``schemas.fast_encoder`` falls back to fastavro.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "schemas._avro_fast",
            sources=["schemas/_avro_fast.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c11"] if __import__("os").name != "nt" else [],
        )
    ]
)
