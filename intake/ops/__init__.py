"""What operators watch: the health of the gateway's parts and the figures about intake and
requests.
"""
