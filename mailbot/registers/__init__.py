"""Registers: the receive register (ทะเบียนรับ), the dispatch register (ทะเบียนส่ง), licences, the
supervisors' daily log, the audit chain, and how numbers are written."""
