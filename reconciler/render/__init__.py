"""Text made from state: /etc/hosts, resolv.conf, the nftables ruleset, the plan as text or JSON.

Pure: the text is written by `reconciler.kernel`, never here.
"""
