"""Simplified Chinese number formats for BrokerCRM, over Django's own zh_Hans formats.

Django's zh_Hans groups digits by four with no separator (1234567). Chinese brokerage
statements and trading software group money by three with a comma (1,234,567.89), so
account managers read amounts the same way here. Dates keep Django's zh_Hans formats
(2026年11月22日); the pages that need a compact date use Y-m-d explicitly.
"""

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
