"""Mutation analysis of the kit's checks: mutants of the reference's four student steps, graded
as one class by the kit's own engine, to measure which wrong code the checks catch.

    seeds.py      the reference's functions and other correct ways to write them
    operators.py  mutation operators: cosmic-ray's, plus this assignment's domain operators
    generate.py   the deterministic list of mutants, and the committed equivalent ones
    run.py        splice them into the release, grade them, report (`make mutation`)
"""
