"""Deployment targets: where graded code runs outside a checkout.

    image.py        the Docker grading image (docker/: its Dockerfile and inputs, shipped as package data)
    gradescope.py   the Gradescope autograder zip (gradescope/: setup.sh and run_autograder templates)

Imports only the standard library (the CI script runs ``python -m grader.deploy.image``
with a bare system python).
"""
