"""Synthetic data for the sources of a dbt project the user brings (issue #17).

project.py reads the dbt project through dbt itself, infer.py reads its compiled SQL with sqlglot,
constraints.py turns declarations, tests and uses into one spec per source table, spec.py keeps them
in the editable synth.yml, values.py makes the rows, runtime.py is what the generated pipelines call.
"""
