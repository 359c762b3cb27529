"""Deployment targets: where graded code runs outside a checkout.

    image.py        the Docker grading image (docker/: its Dockerfile and inputs, shipped as package data)
    gradescope.py   the Gradescope autograder zip (gradescope/: setup.sh and run_autograder templates)
    student.py      the student bundle: a self-check wheel without reference/ or hidden checks, and the handout zip
    wheel.py        what gradescope.py and student.py share: copying packages, building a wheel with pip

Imports only the standard library (the CI script runs ``python -m grader.deploy.image``
with a bare system python).
"""
