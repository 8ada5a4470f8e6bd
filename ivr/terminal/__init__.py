"""What ``ivr`` commands tell people: a problem as one line, what a process runs with, counts in words."""
