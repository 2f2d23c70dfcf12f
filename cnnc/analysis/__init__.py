"""The middle of the compiler: a syntax tree becomes the typed IR and its Analysis.

kinds (the layer kinds and their Keras signatures), arguments and binding (a call's
arguments checked like Keras's), compile_spec (compile/fit), resolve/ (syntax tree ->
IR), ir (the DAG), graph_order and groups (Keras's layer order and summary rows),
infer/ (shapes, weights, parameters, MACs), shapes (the arithmetic), lint (warnings).
Imports the language and support, never a front end's reader or a back end.
"""
