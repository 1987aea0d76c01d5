"""busdoc.sniffer"""
