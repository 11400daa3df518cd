// The Python module shiftzoo._C. Importing it loads the operator library (the static
// TORCH_LIBRARY registrations); it also tells the Python registry which plugins are compiled in.
#include <Python.h>

#include "backends/generated/builtin_plugins.h"

namespace shiftzoo {
namespace {

// Appends a new reference to `list`, handing it over.
void append(PyObject* list, PyObject* item) {
  PyList_Append(list, item);
  Py_DECREF(item);
}

template <class... Paddings>
PyObject* padding_names(PluginList<Paddings...>) {
  PyObject* list = PyList_New(0);
  (append(list, PyUnicode_FromString(plugin_name<Paddings>::value)), ...);
  return list;
}

template <class... Interps>
PyObject* interp_names_and_supports(PluginList<Interps...>) {
  PyObject* list = PyList_New(0);
  (append(list, Py_BuildValue("(si)", plugin_name<Interps>::value, Interps::support)), ...);
  return list;
}

PyObject* builtin_plugins(PyObject*, PyObject*) {
  return Py_BuildValue("{sNsN}", "padding", padding_names(BuiltinPaddings{}), "interp",
                       interp_names_and_supports(BuiltinInterps{}));
}

PyMethodDef methods[] = {
    {"builtin_plugins", builtin_plugins, METH_NOARGS,
     "The compiled plugins: {'padding': [name, ...], 'interp': [(name, support), ...]}."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", "shiftzoo's compiled operators.", -1, methods};

}  // namespace
}  // namespace shiftzoo

PyMODINIT_FUNC PyInit__C() { return PyModule_Create(&shiftzoo::module_def); }
