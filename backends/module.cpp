// The Python module shiftzoo._C. Importing it loads the operator library (the static
// TORCH_LIBRARY registrations); it also tells the Python registry which plugins are compiled in.
#include <Python.h>

#include "generated/builtin_plugins.h"

namespace {

// Appends a new reference to `list`, handing it over.
void append(PyObject* list, PyObject* item) {
  PyList_Append(list, item);
  Py_DECREF(item);
}

PyObject* builtin_plugins(PyObject*, PyObject*) {
  PyObject* paddings = PyList_New(0);
  PyObject* interps = PyList_New(0);
#define SHIFTZOO_ADD_PADDING(NAME) append(paddings, PyUnicode_FromString(#NAME));
#define SHIFTZOO_ADD_INTERP(NAME) \
  append(interps, Py_BuildValue("(si)", #NAME, shiftzoo::interp::NAME::support));
  SHIFTZOO_FOR_EACH_PADDING(SHIFTZOO_ADD_PADDING)
  SHIFTZOO_FOR_EACH_INTERP(SHIFTZOO_ADD_INTERP)
#undef SHIFTZOO_ADD_PADDING
#undef SHIFTZOO_ADD_INTERP
  return Py_BuildValue("{sNsN}", "padding", paddings, "interp", interps);
}

PyMethodDef methods[] = {
    {"builtin_plugins", builtin_plugins, METH_NOARGS,
     "The compiled plugins: {'padding': [name, ...], 'interp': [(name, support), ...]}."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", "shiftzoo's compiled operators.", -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__C() { return PyModule_Create(&module_def); }
