using Farm.Coordinator.Grains;
using Orleans.Runtime;

namespace Farm.Cli.Build;

/// <summary>
/// The grain factory the embedded farm hands to the build orchestrator before any silo runs. The orchestrator asks
/// for a layer grain only for a step the action cache cannot answer, so a fully cached build never starts the silo,
/// the bus or the worker; the first <see cref="ILayerGrain.BuildOrJoinAsync"/> (or BuildAsync) starts them (once) and then calls the real
/// grain. Every other member starts the farm and delegates.
/// </summary>
internal sealed class DeferredGrainFactory(Func<CancellationToken, Task<IGrainFactory>> start) : IGrainFactory
{
    private readonly Lazy<Task<IGrainFactory>> _started = new(() => start(CancellationToken.None));

    /// <summary>Whether the farm behind it was ever started.</summary>
    public bool Started => _started.IsValueCreated;

    public TGrainInterface GetGrain<TGrainInterface>(string primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithStringKey =>
        typeof(TGrainInterface) == typeof(ILayerGrain) && grainClassNamePrefix is null
            ? (TGrainInterface)(object)new DeferredLayerGrain(this, primaryKey)
            : Real().GetGrain<TGrainInterface>(primaryKey, grainClassNamePrefix);

    public TGrainInterface GetGrain<TGrainInterface>(Guid primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithGuidKey => Real().GetGrain<TGrainInterface>(primaryKey, grainClassNamePrefix);

    public TGrainInterface GetGrain<TGrainInterface>(long primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithIntegerKey => Real().GetGrain<TGrainInterface>(primaryKey, grainClassNamePrefix);

    public TGrainInterface GetGrain<TGrainInterface>(Guid primaryKey, string keyExtension, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithGuidCompoundKey => Real().GetGrain<TGrainInterface>(primaryKey, keyExtension, grainClassNamePrefix);

    public TGrainInterface GetGrain<TGrainInterface>(long primaryKey, string keyExtension, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithIntegerCompoundKey => Real().GetGrain<TGrainInterface>(primaryKey, keyExtension, grainClassNamePrefix);

    public TGrainObserverInterface CreateObjectReference<TGrainObserverInterface>(IGrainObserver obj)
        where TGrainObserverInterface : IGrainObserver => Real().CreateObjectReference<TGrainObserverInterface>(obj);

    public void DeleteObjectReference<TGrainObserverInterface>(IGrainObserver obj)
        where TGrainObserverInterface : IGrainObserver => Real().DeleteObjectReference<TGrainObserverInterface>(obj);

    public IGrain GetGrain(Type grainInterfaceType, Guid grainPrimaryKey) => Real().GetGrain(grainInterfaceType, grainPrimaryKey);

    public IGrain GetGrain(Type grainInterfaceType, long grainPrimaryKey) => Real().GetGrain(grainInterfaceType, grainPrimaryKey);

    public IGrain GetGrain(Type grainInterfaceType, string grainPrimaryKey) => Real().GetGrain(grainInterfaceType, grainPrimaryKey);

    public IGrain GetGrain(Type grainInterfaceType, Guid grainPrimaryKey, string keyExtension) => Real().GetGrain(grainInterfaceType, grainPrimaryKey, keyExtension);

    public IGrain GetGrain(Type grainInterfaceType, long grainPrimaryKey, string keyExtension) => Real().GetGrain(grainInterfaceType, grainPrimaryKey, keyExtension);

    public IAddressable GetGrain(Type grainInterfaceType, IdSpan grainPrimaryKey) => Real().GetGrain(grainInterfaceType, grainPrimaryKey);

    public IAddressable GetGrain(Type grainInterfaceType, IdSpan grainPrimaryKey, string grainClassNamePostfix) => Real().GetGrain(grainInterfaceType, grainPrimaryKey, grainClassNamePostfix);

    public TGrainInterface GetGrain<TGrainInterface>(GrainId grainId)
        where TGrainInterface : IAddressable => Real().GetGrain<TGrainInterface>(grainId);

    public IAddressable GetGrain(GrainId grainId) => Real().GetGrain(grainId);

    public IAddressable GetGrain(GrainId grainId, GrainInterfaceType interfaceType) => Real().GetGrain(grainId, interfaceType);

    public Task<IGrainFactory> StartedAsync() => _started.Value;

    // Only for members the orchestrator does not use: blocking is acceptable there.
    private IGrainFactory Real() => _started.Value.GetAwaiter().GetResult();

    /// <summary>Starts the farm (once), then calls the layer grain <paramref name="key"/>.</summary>
    private async Task<T> CallAsync<T>(string key, Func<ILayerGrain, Task<T>> call)
    {
        var factory = await StartedAsync().ConfigureAwait(false);
        return await call(factory.GetGrain<ILayerGrain>(key)).ConfigureAwait(false);
    }

    /// <summary>A layer grain whose calls wait for the farm to start (a client-side stand-in, not grain code).</summary>
    private sealed class DeferredLayerGrain(DeferredGrainFactory factory, string key) : ILayerGrain
    {
        public Task<LayerJobOutcome> BuildAsync(LayerJobRequest request) => factory.CallAsync(key, g => g.BuildAsync(request));

        public Task<LayerJobOutcome?> BuildOrJoinAsync(LayerJobRequest request, TimeSpan wait) => factory.CallAsync(key, g => g.BuildOrJoinAsync(request, wait));

        public Task<LayerJobOutcome?> GetOutcomeAsync() => factory.CallAsync(key, g => g.GetOutcomeAsync());

        public Task OnJobBuiltAsync(Guid jobId, JobSuccess success) => factory.CallAsync(key, async g =>
        {
            await g.OnJobBuiltAsync(jobId, success).ConfigureAwait(true);
            return true;
        });

        public Task OnJobFailedAsync(Guid jobId, JobFailure failure) => factory.CallAsync(key, async g =>
        {
            await g.OnJobFailedAsync(jobId, failure).ConfigureAwait(true);
            return true;
        });
    }
}
