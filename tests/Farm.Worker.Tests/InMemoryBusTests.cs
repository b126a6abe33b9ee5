using Farm.Contracts;
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
