"""The conductor: study definitions -> a DAG of stage manifests -> local or Slurm execution -> status."""
