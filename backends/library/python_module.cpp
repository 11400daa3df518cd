// The Python module shiftzoo._C. Importing it loads the operator library (the static
// TORCH_LIBRARY registrations); it also tells the Python registry which plugins are compiled in.
#include <Python.h>

#include "backends/generated/builtin_plugins.h"

namespace shiftzoo {
namespace cpu {  // backends/cpu/kernel_table.h, declared here alone to keep this unit free of ATen
struct KernelSet;
const KernelSet* avx2_kernels();
bool use_avx2();
}  // namespace cpu

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

PyObject* cpu_isa(PyObject*, PyObject*) {
  PyObject* compiled = PyList_New(0);
  append(compiled, PyUnicode_FromString("baseline"));
  if (cpu::avx2_kernels() != nullptr) append(compiled, PyUnicode_FromString("avx2+fma"));
  return Py_BuildValue("{sNss}", "compiled", compiled, "active", cpu::use_avx2() ? "avx2+fma" : "baseline");
}

PyMethodDef methods[] = {
    {"builtin_plugins", builtin_plugins, METH_NOARGS,
     "The compiled plugins: {'padding': [name, ...], 'interp': [(name, support), ...]}."},
    {"cpu_isa", cpu_isa, METH_NOARGS,
     "The CPU kernels' instruction sets: {'compiled': [...], 'active': the one this machine runs}."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", "shiftzoo's compiled operators.", -1, methods};

}  // namespace
}  // namespace shiftzoo

PyMODINIT_FUNC PyInit__C() { return PyModule_Create(&shiftzoo::module_def); }
