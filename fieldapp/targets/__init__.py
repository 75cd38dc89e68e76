"""Targets of inspection (执法对象): street shops and construction sites, 一店一档 / 一店一码."""
