"""The .cnn language: grammar loader and parser (parse), the syntax tree every front end
emits (syntax), and constant folding of its arithmetic (arith). The grammar itself is
grammar/cnn.lark at the top of the repository (cnnc/grammar in a wheel).
"""
