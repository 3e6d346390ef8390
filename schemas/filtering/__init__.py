"""What a subscription's filters mean: the text normaliser, the keyword query language and the matching rules.

Pure and shared, so that the matcher, the api's validation and preview, and the notifier's title comparisons agree
on every match.
"""
