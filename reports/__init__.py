"""busdoc.reports"""
