"""busdoc.storage"""
