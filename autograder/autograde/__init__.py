"""`python -m autograder autograde`: grade a whole class in nbgrader's course layout."""
