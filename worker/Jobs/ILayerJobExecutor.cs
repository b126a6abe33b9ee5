using Farm.Contracts;

namespace Farm.Worker.Jobs;

/// <summary>Runs one <see cref="BuildLayer"/> job: inputs, execution, diff, upload.</summary>
public interface ILayerJobExecutor
{
    Task<LayerJobResult> ExecuteAsync(BuildLayer job, Func<string, string, Task> output, CancellationToken cancellationToken);
}

/// <summary>The layer a job produced (null when the step changed nothing) and when each phase ran.</summary>
public sealed record LayerJobResult(LayerRef? Layer, PhaseTimings Timings);
