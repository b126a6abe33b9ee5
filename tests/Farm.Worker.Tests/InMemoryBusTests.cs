using System.Diagnostics;
using System.Diagnostics.Metrics;
using Farm.Contracts;
using Farm.Testing;
using Farm.Worker.Telemetry;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Farm.Worker.Tests;

/// <summary>The embedded farm runs the same worker code over MassTransit's in-memory transport.</summary>
[Collection(ExecutorCollection.Name)]
public sealed class InMemoryBusTests(ExecutorFixture fixture)
{
    [Fact]
    public async Task A_job_published_on_the_in_memory_bus_is_built_and_reported()
    {
        var spans = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == WorkerTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                lock (spans)
                {
                    spans.Add(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        var phases = new List<string>();
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == WorkerTelemetry.Name)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        meters.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "phase")
                {
                    lock (phases)
                    {
                        phases.Add((string)tag.Value!);
                    }
                }
            }
        });
        meters.Start();
        var results = new ResultSink();
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddSingleton(results);
        builder.Services.AddFarmWorker(o =>
        {
            o.Name = "embedded";
            o.StateDirectory = Path.Combine(fixture.Root, "mem");
            o.Slots = 1;
        });
        builder.Services.AddMassTransit(x =>
        {
            x.AddFarmWorkerConsumers(1);
            x.AddConsumer<ResultConsumer>();
            x.UsingInMemory((context, cfg) => cfg.ConfigureEndpoints(context));
        });
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            var job = fixture.Job(ExecutorFixture.Run("echo from-the-bus && echo hi > /hi.txt"));
            await host.Services.GetRequiredService<IBus>().Publish(job);

            var built = await results.Built.Task.WaitAsync(TimeSpan.FromMinutes(2));
            Assert.Equal(job.JobId, built.JobId);
            Assert.Equal("embedded", built.Worker);
            Assert.NotNull(built.Layer);
            Assert.Contains(await fixture.ReadLayerAsync(built.Layer!), e => e.Name == "hi.txt" && e.Content == "hi\n");
            Assert.Contains("from-the-bus", await results.FirstLine.Task.WaitAsync(TimeSpan.FromMinutes(1)), StringComparison.Ordinal);

            // One span for the step, with the cache key, and a child span per phase. The step's span ends after its
            // result is published: wait for it to end rather than race it.
            bool StepEnded()
            {
                lock (spans)
                {
                    return spans.Any(a => a.OperationName == $"step {job.StepId}");
                }
            }

            await Wait.UntilAsync(StepEnded, TimeSpan.FromSeconds(30), () => $"the span of step {job.StepId} to end");
            Activity step;
            lock (spans)
            {
                step = Assert.Single(spans, a => a.OperationName == $"step {job.StepId}" && (string?)a.GetTagItem("farm.cache_key") == job.CacheKey);
                var children = spans.Where(a => a.ParentSpanId == step.SpanId).Select(a => a.OperationName).Order(StringComparer.Ordinal);
                Assert.Equal(["diff", "execute", "input_fetch", "queued", "upload"], children);
            }

            Assert.Equal("built", step.GetTagItem("farm.outcome"));
            Assert.Equal("embedded", step.GetTagItem("farm.worker"));
            lock (phases)
            {
                Assert.Contains("execute", phases);
                Assert.Contains("upload", phases);
            }
        }
        finally
        {
            await host.StopAsync();
        }
    }

    public sealed class ResultSink
    {
        public TaskCompletionSource<LayerBuilt> Built { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<string> FirstLine { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public sealed class ResultConsumer(ResultSink sink) : IConsumer<LayerBuilt>, IConsumer<LayerBuildFailed>, IConsumer<StepLogLine>
    {
        public Task Consume(ConsumeContext<LayerBuilt> context)
        {
            sink.Built.TrySetResult(context.Message);
            return Task.CompletedTask;
        }

        public Task Consume(ConsumeContext<LayerBuildFailed> context)
        {
            sink.Built.TrySetException(new InvalidOperationException($"{context.Message.Code}: {context.Message.Message}"));
            return Task.CompletedTask;
        }

        public Task Consume(ConsumeContext<StepLogLine> context)
        {
            sink.FirstLine.TrySetResult(context.Message.Line);
            return Task.CompletedTask;
        }
    }
}
