"""OAM-job machinery shared by Service Function Testing (``sft``) and Fault Management (``fm``)."""
