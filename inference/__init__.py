"""busdoc.inference"""
