"""cnnc where people already work: the IPython/Jupyter extension (ipython.py) and the
language server for editors (lsp.py). They sit above the API, beside the command line,
and read models as the command line does (frontends), never running the user's code.
"""
