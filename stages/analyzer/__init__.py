"""The analyzer stage: from many evaluator results to the study's tables, figures and a static HTML report."""
