using System.Collections.Concurrent;
using System.Text.Json;
using Farm.Contracts;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace Farm.Coordinator.Tests;

/// <summary>SubmitBuild on the bus: a request is answered with the id at once, the end is published as BuildCompleted.</summary>
public sealed class SubmitConsumerTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task A_submit_request_is_answered_with_the_new_id_and_the_build_ends_with_a_published_build_completed()
    {
        // Every completion by id, whether it arrives before or after the id is known here.
        var completions = new ConcurrentDictionary<Guid, TaskCompletionSource<BuildCompleted>>();
        TaskCompletionSource<BuildCompleted> Completion(Guid id) => completions.GetOrAdd(id, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));
        var bus = fixture.Services.GetRequiredService<IBus>();
        var handle = bus.ConnectReceiveEndpoint($"test-completed-{Guid.NewGuid():N}", e => e.Handler<BuildCompleted>(context =>
        {
            Completion(context.Message.BuildId).TrySetResult(context.Message);
            return Task.CompletedTask;
        }));
        await handle.Ready;
        try
        {
            var tag = fixture.Context.Tag("consumed:1");
            var submit = JsonSerializer.Deserialize<SubmitBuild>(fixture.Context.SubmitJson(tag).ToJsonString(), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
            Assert.Equal(Guid.Empty, submit.BuildId);
            var client = fixture.Services.GetRequiredService<IClientFactory>().CreateRequestClient<SubmitBuild>();

            var response = await client.GetResponse<BuildAccepted>(submit);
            Assert.NotEqual(Guid.Empty, response.Message.BuildId);

            // The token only bounds a broken build; nothing is timed.
            var end = await Completion(response.Message.BuildId).Task.WaitAsync(TimeSpan.FromMinutes(4));
            Assert.True(end.Succeeded, end.Error);
            Assert.Equal([tag], end.Pushed);
            Assert.Equal(end.ImageDigest, await SubmitContext.RegistryDigestAsync(tag));
        }
        finally
        {
            await handle.StopAsync();
        }
    }

    [Fact]
    public async Task A_submission_with_a_malformed_digest_is_refused_with_a_published_build_completed()
    {
        var id = Guid.NewGuid();
        var refused = new TaskCompletionSource<BuildCompleted>(TaskCreationOptions.RunContinuationsAsynchronously);
        var bus = fixture.Services.GetRequiredService<IBus>();
        var handle = bus.ConnectReceiveEndpoint($"test-refused-{Guid.NewGuid():N}", e => e.Handler<BuildCompleted>(context =>
        {
            if (context.Message.BuildId == id)
            {
                refused.TrySetResult(context.Message);
            }

            return Task.CompletedTask;
        }));
        await handle.Ready;
        try
        {
            var submit = JsonSerializer.Deserialize<SubmitBuild>(fixture.Context.SubmitJson(fixture.Context.Tag("never:1"), id).ToJsonString(), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;

            await bus.Publish(submit with { ContextDigest = "sha256:not-hex" });

            var end = await refused.Task.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.False(end.Succeeded);
            Assert.Equal("FARM4211", end.ErrorCode);
            Assert.Contains("\"contextDigest\" is not a digest ('sha256:not-hex'", end.Error, StringComparison.Ordinal);
        }
        finally
        {
            await handle.StopAsync();
        }
    }

    [Fact]
    public async Task A_submission_without_a_context_index_builds_through_the_queue()
    {
        var id = Guid.NewGuid();
        var completed = new TaskCompletionSource<BuildCompleted>(TaskCreationOptions.RunContinuationsAsynchronously);
        var bus = fixture.Services.GetRequiredService<IBus>();
        var handle = bus.ConnectReceiveEndpoint($"test-no-index-{Guid.NewGuid():N}", e => e.Handler<BuildCompleted>(context =>
        {
            if (context.Message.BuildId == id)
            {
                completed.TrySetResult(context.Message);
            }

            return Task.CompletedTask;
        }));
        await handle.Ready;
        try
        {
            var tag = fixture.Context.Tag("queued-no-index:1");
            var submit = JsonSerializer.Deserialize<SubmitBuild>(fixture.Context.SubmitJson(tag, id).ToJsonString(), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;

            await bus.Publish(submit with { Dockerfile = "ARG BASE\nFROM ${BASE}\nRUN echo queued > /out\n", ContextIndexDigest = null });

            // The token only bounds a broken build; nothing is timed.
            var end = await completed.Task.WaitAsync(TimeSpan.FromMinutes(4));
            Assert.True(end.Succeeded, end.Error);
            Assert.Equal(end.ImageDigest, await SubmitContext.RegistryDigestAsync(tag));
        }
        finally
        {
            await handle.StopAsync();
        }
    }
}
