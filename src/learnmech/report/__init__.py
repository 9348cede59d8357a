"""The HTML report: scorecard first, then one section per law with its figures."""

from learnmech.report.html import write_report

__all__ = ["write_report"]
