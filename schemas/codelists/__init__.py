"""The code lists the contracts' values come from: CPV 2008, NUTS and French geography, the sector taxonomy.

Reference data shipped with the code (`data/`, with its provenance). Shared so that the classifier that assigns
codes and the api that validates subscription filters read one list.
"""
