"""The contacts' portal: registered contacts sign in by a mailed one-time link, log requests
through the same pipeline as mail and calls, and follow their customer's requests.

``views`` holds the blueprint and its pages; ``sign_in`` the links and sessions; ``submit``
the portal as a door of the pipeline; ``actions`` what a contact may ask of a request;
``access`` who may see and do what; ``timeline`` what of a request's history is public.
"""
