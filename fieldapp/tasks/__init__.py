"""Tasks (任务下派): a leader sends officers to a target; an approved inspection closes it."""
