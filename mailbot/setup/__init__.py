"""The officer's first hour (issue 22): the workspace ``mailbot`` makes on its first run, the
mail providers' known settings, trying a mailbox for real and explaining what fails, the Thai
starter catalogue of services and the year's public holidays, settings written back into
``mailbot.yaml`` and ``rules.yaml`` with their comments kept, and starting with the computer.

The console's setup pages (``console/setup.py``) and ``mailbot start`` call these; nothing here
serves pages or keeps a case.
"""
