"""Avatar Studio's rendering engine: a plain Python library (no Django import anywhere below).

The Django apps call it with paths and plain dataclasses; it never sees a model instance.
"""
