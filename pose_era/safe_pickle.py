"""Unpickling with an allow-list, for the model and dataset files users download.

A pickle can name any importable callable (os.system, builtins.eval) and have it called while
loading, so a crafted SMPL `.pkl` or an `.npz` read with `allow_pickle=True` runs a stranger's
code. These readers resolve only the globals a NumPy array, a scipy sparse matrix or a chumpy
array needs (numpy's array reconstruction and dtypes, plain containers) and let the caller map
other names to inert stand-ins; anything else stops the load with an UnpicklingError.
"""
import _compat_pickle
import pickle
import zipfile

import numpy as np

# (module, name) pairs that are safe to resolve: they build arrays, dtypes and containers only.
NUMPY_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
})
# copyreg._reconstructor(cls, base, state) is how Python 2 pickles plain objects; it only calls
# base.__new__(cls), and cls / base must themselves resolve through this list.
BUILTIN_GLOBALS = frozenset({
    ("builtins", "object"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"),
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),  # how protocol 2 stores bytes (e.g. an array's buffer) in Python 3
})


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only NUMPY_GLOBALS, BUILTIN_GLOBALS and `substitute(module, name)`'s answers.

    substitute: optional callable returning a stand-in class for (module, name), or None.
    """

    def __init__(self, file, substitute=None, what="file", **kwargs):
        super().__init__(file, **kwargs)
        self._substitute = substitute
        self._what = what

    def find_class(self, module, name):
        # Python 2 names (copy_reg, __builtin__) -> Python 3's, as pickle's fix_imports does
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in NUMPY_GLOBALS or (module, name) in BUILTIN_GLOBALS:
            return super().find_class(module, name)
        if self._substitute is not None:
            stand_in = self._substitute(module, name)
            if stand_in is not None:
                return stand_in
        raise pickle.UnpicklingError(
            f"{self._what} refers to {module}.{name}, which is not allowed (only NumPy arrays, "
            "scipy sparse matrices and chumpy arrays are read); it is not a plain model file "
            "and may be malicious")


def _object_member(zf, key, what):
    """An object array's member of an .npz: its .npy header, then a pickle of the array."""
    with zf.open(key + ".npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        read_header(f)
        return np.asarray(RestrictedUnpickler(f, what=what, encoding="latin1").load())


def load_npz(path, what=None):
    """All arrays of an .npz file, as np.load(path, allow_pickle=False) reads them, except that
    object arrays (e.g. strings saved as Python objects) go through RestrictedUnpickler."""
    what = what or str(path)
    arrays = {}
    with np.load(path, allow_pickle=False) as f, zipfile.ZipFile(path) as zf:
        for key in f.files:
            try:
                arrays[key] = f[key]
            except ValueError:  # an object array: numpy would need allow_pickle=True
                arrays[key] = _object_member(zf, key, what)
    return arrays
