"""Seeing a guest: what it offers to look at, and each way to look — serial console, screenshot,
graphical viewer — with the lookups and checks each needs, so the CLI only prints.

viewables   what the live XML offers (graphics, video, serial consoles) and the refusals with fixes
console     the `virtnet console` session: checks, then virt/console.py's stream (libvirt stays there)
screenshot  the image libvirt hands back, identified by its bytes and saved whole
viewer      virt-viewer or virt-manager, chosen and checked against the URI's transport
terminal    the keyboard in raw mode while a console session runs
"""
